"""What the device trains: schemes and the file rewritten for one (schemes), contribution analysis and
scheme search (search, behind `host_tools plan`), the memory/gain frontier plot (frontier_plot)."""
