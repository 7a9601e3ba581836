__version__ = "0.1.0"
from . import evaluation as _evaluation  # registers the default evaluator (the template never imports evaluation)
