"""imgtrans: turn images into other images with GANs (style transfer, super-resolution, denoising).

The core (everything outside ``imgtrans.gui``) never imports Qt. Importing this package is cheap:
torch is imported only by the modules that run models.
"""

__version__ = "0.1.0"
