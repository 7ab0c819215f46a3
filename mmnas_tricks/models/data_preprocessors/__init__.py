from .searchable_det_data_preprocessor import SearchableDetDataPreprocessor

__all__ = ['SearchableDetDataPreprocessor']
