"""Model sources -> quantized Graph: PyTorch through torch.fx (torch_fx), the MIT int8 models (mit), and the
calibration data they quantize with (calibrate)."""
