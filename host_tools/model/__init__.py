"""The quantized model: the Graph (graph), its arithmetic (quant, numerics), the .mct file (mct_format),
and what is done to a converted file (channel_order, export)."""
