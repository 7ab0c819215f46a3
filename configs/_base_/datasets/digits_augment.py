# Data augmentation for the digits detection data (docs/tricks.md,
# "Training recipe"), made of mmdet's own transforms: training pipelines
# that replace `digits_train_pipeline` (configs/_base_/datasets/
# digits_detection.py), e.g. for a supernet:
#   train_dataloader = dict(dataset=dict(
#       pipeline=_base_.digits_photometric_cutout_train_pipeline))
# and the mixup dataset wrapper. Self-contained (no _base_ of its own), so
# that it sits beside a config that already inherits the digits data.
digits_aug_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                        'scale_factor')
digits_aug_load = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
]
digits_aug_resize = dict(type='Resize', scale=(128, 128), keep_ratio=True)
digits_aug_pack = dict(type='PackDetInputs', meta_keys=digits_aug_meta_keys)
# photometric: brightness, contrast, saturation and hue jitter (SSD's)
digits_photometric = dict(type='PhotoMetricDistortion')
# geometric: small random rotation, shift, scale and shear; boxes follow,
# those pushed off the canvas are dropped (the border is the dark canvas)
digits_geometric = dict(
    type='RandomAffine',
    max_rotate_degree=5.0,
    max_translate_ratio=0.1,
    scaling_ratio_range=(0.8, 1.2),
    max_shear_degree=2.0,
    border_val=(0, 0, 0))
# cutout (DeVries & Taylor, 2017): 1-2 holes of 16-24 px filled with the
# canvas's dark background
digits_cutout = dict(
    type='CutOut',
    n_holes=(1, 2),
    cutout_shape=[(16, 16), (24, 24)],
    fill_in=(0, 0, 0))
digits_photometric_train_pipeline = digits_aug_load + [
    digits_photometric, digits_aug_resize, digits_aug_pack
]
digits_geometric_train_pipeline = digits_aug_load + [
    digits_geometric, digits_aug_resize, digits_aug_pack
]
digits_cutout_train_pipeline = digits_aug_load + [
    digits_aug_resize, digits_cutout, digits_aug_pack
]
digits_photometric_cutout_train_pipeline = digits_aug_load + [
    digits_photometric, digits_aug_resize, digits_cutout, digits_aug_pack
]
# mixup (YOLOX's, mmdet's MixUp): each canvas blended with another one of
# the dataset, both sets of boxes kept. It needs the dataset wrapped, so it
# comes as a whole dataset: `dataset` is the wrapped digits dataset (with
# only the loading steps in its pipeline), e.g.
#   train_dataloader = dict(dataset=dict(
#       _delete_=True, **_base_.digits_mixup_dataset,
#       dataset=dict(_base_.digits_train_dataloader.dataset,
#                    pipeline=_base_.digits_mixup_load_pipeline)))
digits_mixup_load_pipeline = digits_aug_load
digits_mixup_dataset = dict(
    type='MultiImageMixDataset',
    pipeline=[
        dict(
            type='MixUp',
            img_scale=(128, 128),
            ratio_range=(0.8, 1.2),
            pad_val=0.0), digits_aug_resize, digits_aug_pack
    ])
