# digits semantic segmentation: the same canvases as digits detection,
# 11 classes (background + 10 digits), label maps under seg_maps/. Built on
# first use into data/digits. Names are prefixed with `digits_` so that this
# base can sit beside an mmseg model-zoo base (see digits_detection.py).
digits_data_root = 'data/digits/'
digits_spec = dict(num_train=2000, num_val=500, image_size=128, seed=0)
digits_seg_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
digits_seg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
digits_seg_train_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='mmnas_tricks.DigitsSegDataset',
        data_root=digits_data_root,
        digits_spec=digits_spec,
        data_prefix=dict(
            img_path='images/train', seg_map_path='seg_maps/train'),
        pipeline=digits_seg_train_pipeline))
digits_seg_val_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmnas_tricks.DigitsSegDataset',
        data_root=digits_data_root,
        digits_spec=digits_spec,
        data_prefix=dict(img_path='images/val', seg_map_path='seg_maps/val'),
        pipeline=digits_seg_test_pipeline))
digits_seg_val_evaluator = dict(
    _delete_=True, type='IoUMetric', iou_metrics=['mIoU'])

# The held-out split of search (see digits_detection.py): supernets train on
# the first 7/8 of the training canvases, candidates are scored on the rest.
digits_seg_supernet_subset = (0.0, 0.875)
digits_seg_heldout_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmnas_tricks.DigitsSegDataset',
        data_root=digits_data_root,
        digits_spec=digits_spec,
        data_prefix=dict(
            img_path='images/train', seg_map_path='seg_maps/train'),
        subset=(0.875, 1.0),
        pipeline=digits_seg_test_pipeline))

# A search's held-out split that nothing in a pipeline trains on (see
# digits_detection.py, digits_search_dataloader): 250 new canvases of the
# training digits in data/digits_search.
digits_search_data_root = 'data/digits_search/'
digits_search_spec = dict(
    num_train=250, num_val=1, image_size=128, seed=0, draw=1)
digits_seg_search_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmnas_tricks.DigitsSegDataset',
        data_root=digits_search_data_root,
        digits_spec=digits_search_spec,
        data_prefix=dict(
            img_path='images/train', seg_map_path='seg_maps/train'),
        pipeline=digits_seg_test_pipeline))

# The test split, for reports only (see digits_detection.py): 1,000
# canvases of draw 2 of the val source digits in data/digits_test.
digits_test_data_root = 'data/digits_test/'
digits_test_spec = dict(
    num_train=1, num_val=1000, image_size=128, seed=0, draw=2)
digits_seg_test_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmnas_tricks.DigitsSegDataset',
        data_root=digits_test_data_root,
        digits_spec=digits_test_spec,
        data_prefix=dict(img_path='images/val', seg_map_path='seg_maps/val'),
        pipeline=digits_seg_test_pipeline))
