# The main job with its supernet trained on augmented canvases (photometric
# jitter and cutout, mmdet's PhotoMetricDistortion and CutOut: docs/
# tricks.md, "Training recipe"). Only the supernet sees them: the found
# subnets retrain with nas.retrain, the baseline's recipe, without
# augmentation, as the baseline itself trains. A row of the recipe
# ablation:
#   python tools/nas.py THIS_CONFIG
_base_ = [
    'nsga2_fcos_whole-elastic_r18w16_digits.py',
    '../_base_/datasets/digits_augment.py'
]

train_dataloader = dict(
    dataset=dict(pipeline=_base_.digits_photometric_cutout_train_pipeline))
