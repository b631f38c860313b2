"""Drop-in interfaces of other PixelFade code bases, running on this package's engine.

released.py  ``PixelFade(opt, logger, data_shape)``: the interface of the authors' released code
             (iSEE-Laboratory/PixelFade), on the engine's ``schedule="released"``
"""
from .released import OPTION_DEFAULTS, PixelFade, config_from_options, released_options

__all__ = ["OPTION_DEFAULTS", "PixelFade", "config_from_options", "released_options"]
