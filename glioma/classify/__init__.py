"""The LGG/HGG classifier: a 4-channel torchvision ResNet with one HGG logit."""
