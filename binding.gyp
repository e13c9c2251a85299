{
  "targets": [
    {
      "target_name": "vrouter_tun",
      "sources": ["router/tun/tun_addon.c"]
    }
  ]
}
