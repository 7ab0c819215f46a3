# The main job's supernet trained from scratch for 24 epochs (no inherited
# baseline; sandwich rule and in-place distillation kept, at the baseline's
# learning rate, 0.01 cosine to 0): the "without inheritance" row of the
# rank-quality ablation in docs/benchmarks.md, "Rank quality of the
# whole-detector supernet", at the length where the inherited supernet was
# measured too. The sandwich rule trains the largest subnet every
# iteration, the largest-first schedule of Once-for-All without its phases.
#   python tools/nas.py THIS_CONFIG --stages supernet
_base_ = ['ablation_nsga2_fcos_whole-elastic_no-inherit_digits.py']

SUPERNET_EPOCHS = 24

train_cfg = dict(max_epochs=SUPERNET_EPOCHS, val_interval=SUPERNET_EPOCHS)
param_scheduler = [
    # the baseline's warm-up: from scratch, as the baseline trains
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=300),
    dict(
        type='CosineAnnealingLR',
        T_max=SUPERNET_EPOCHS,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=SUPERNET_EPOCHS,
        convert_to_iter_based=True),
]
