{
  "targets": [
    {
      "target_name": "vrouter_tun",
      "sources": ["router/deploy/tun/tun_addon.c"]
    }
  ]
}
