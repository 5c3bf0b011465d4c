"""Plan and apply through octoDNS's Manager: the engine, reviewed plan files, the apply lock."""
