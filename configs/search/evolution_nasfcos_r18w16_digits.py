# Evolutionary search (SPOS) over the digits NAS-FCOS supernet trained with
# configs/supernets/nasfcos_r18w16_fpn-cells-search_gn-head-search_12e_digits.py
# (its last checkpoint is loaded). Sized for 2 CPU cores: 8 generations of 16
# candidates, each scored by bbox mAP on the digits val split after BN
# calibration on 10 training batches; SPOS's defaults are 20 x 50.
# Run: python tools/train.py configs/search/evolution_nasfcos_r18w16_digits.py
# Results: work_dirs/evolution_nasfcos_r18w16_digits/search/
_base_ = [
    '../supernets/nasfcos_r18w16_fpn-cells-search_gn-head-search_12e_digits.py'
]

load_from = ('work_dirs/nasfcos_r18w16_fpn-cells-search_gn-head-search_12e_'
             'digits/epoch_12.pth')
custom_hooks = []  # no subnet sampling: the loop sets the candidates
train_cfg = dict(
    _delete_=True,
    type='mmnas_tricks.EvolutionSearchLoop',
    max_generations=8,
    population_size=16,
    top_k=4,
    num_mutation=8,
    num_crossover=8,
    mutate_prob=0.1,
    calibrate_bn=10,
    score_key='coco/bbox_mAP',
    seed=0,
    # what the exported best subnet (search/best_subnet.py) trains with
    retrain=dict(
        train_cfg=_base_.train_cfg, default_hooks=_base_.default_hooks))
default_hooks = dict(checkpoint=None)
