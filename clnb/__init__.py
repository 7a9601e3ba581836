__version__ = "0.1.0"
from . import evaluation as _evaluation  # registers the default evaluator with the template (the template never imports it)
