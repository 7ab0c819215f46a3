from .digits import DigitsCocoDataset, DigitsSegDataset
from .digits_builder import (CLASSES, SEG_CLASSES, DigitsDatasetError,
                             DigitsSpec, build_digits, check_digits,
                             ensure_digits)

__all__ = [
    'DigitsCocoDataset', 'DigitsSegDataset', 'DigitsSpec',
    'DigitsDatasetError', 'build_digits', 'check_digits', 'ensure_digits',
    'CLASSES', 'SEG_CLASSES'
]
