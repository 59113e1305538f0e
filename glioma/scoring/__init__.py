"""How good and how new synthetic images are: FID, IS, KID, FD_cls, FD_radiomic, MS-SSIM
diversity, memorisation (nearest-training Pearson correlation) and MI. Each module works alone.
"""
