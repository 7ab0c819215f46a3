# The main job's supernet trained 8x as long (48 epochs instead of 6, the
# same recipe otherwise: inherited baseline with its channels sorted,
# sandwich rule, in-place distillation, lr 0.001 cosine to 0), for the
# rank-quality ablation of docs/benchmarks.md, "Rank quality of the
# whole-detector supernet", "Supernet length" (its estimates scored against
# the recorded truth with tools/rank_correlation.py --truth, as that section
# shows). Its supernet stage alone, on the main job's trained baseline:
#   W=work_dirs/ablation_nsga2_fcos_whole-elastic_48e_digits
#   M=work_dirs/nsga2_fcos_whole-elastic_r18w16_digits
#   mkdir -p $W && cp -r $M/baseline $W/
#   python -c "import json; s = json.load(open('$M/nas_state.json')); \
#   json.dump(dict(baseline=s['baseline']), open('$W/nas_state.json', 'w'))"
#   python tools/nas.py THIS_CONFIG --stages supernet
_base_ = ['nsga2_fcos_whole-elastic_r18w16_digits.py']

SUPERNET_EPOCHS = 48

train_cfg = dict(max_epochs=SUPERNET_EPOCHS, val_interval=SUPERNET_EPOCHS)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        T_max=SUPERNET_EPOCHS,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=SUPERNET_EPOCHS,
        convert_to_iter_based=True),
]
