"""The firewall of the PMG prerequisites as nftables, Proxmox VE and markdown rules."""
