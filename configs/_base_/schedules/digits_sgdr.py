# SGDR, cosine annealing with warm restarts (Loshchilov & Hutter, ICLR 2017;
# docs/tricks.md, "Training recipe"): a linear warm-up over the first epoch,
# then mmengine's CosineRestartLR, each period annealing from the base
# learning rate to 0, the second period about twice the first (SGDR's
# T_mult = 2) and ending with the schedule. The warm-up ends before the
# restarts begin: mmengine 0.10's CosineRestartLR does not compose with a
# warm-up that overlaps it (the learning rate then climbs far past the base
# one; docs/tricks.md). Names are prefixed, like the other digits bases, so
# that a config picks the list it needs:
#   param_scheduler = _base_.sgdr_12e_param_scheduler   # retraining
#   param_scheduler = _base_.sgdr_6e_param_scheduler    # a 6-epoch supernet
sgdr_12e_param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineRestartLR',
        periods=[4, 7],
        restart_weights=[1.0, 1.0],
        eta_min=0.0,
        by_epoch=True,
        begin=1,
        end=12,
        convert_to_iter_based=True),
]
sgdr_6e_param_scheduler = [
    sgdr_12e_param_scheduler[0],
    dict(sgdr_12e_param_scheduler[1], periods=[2, 3], end=6),
]
