"""What the device trains: schemes and the file rewritten for one (schemes), the contribution
analysis (contributions) and scheme search (search) behind `host_tools plan`, the memory/gain
frontier plot (frontier_plot)."""
