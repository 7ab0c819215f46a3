# Perturbation-based architecture selection (DARTS-PT, Wang et al., ICLR
# 2021; docs/tricks.md, T5.2) on the digits DARTS supernet trained with
# configs/supernets/darts_fcos_r18w16_fpn-search_gn-head-search_6e_digits.py
# (its last checkpoint is loaded). Edge by edge (random order), each
# candidate is removed in turn and the supernet scored by bbox mAP on the
# held-out last 1/8 of the training canvases; the candidate whose removal
# hurts most is kept. Between decisions the supernet is fine-tuned for
# 20 iterations at a tenth of the learning rate (cosine), the DartsHook
# still training alpha of the undecided edges.
# Run: python tools/train.py \
#   configs/search/darts-pt_fcos_r18w16_fpn-search_gn-head-search_digits.py
# Results: work_dirs/darts-pt_fcos_r18w16_fpn-search_gn-head-search_digits/
#          perturbation_selection/{subnet,argmax_subnet}.yaml, decisions.csv
_base_ = [
    '../supernets/darts_fcos_r18w16_fpn-search_gn-head-search_6e_digits.py'
]

load_from = ('work_dirs/darts_fcos_r18w16_fpn-search_gn-head-search_6e_'
             'digits/epoch_6.pth')
train_cfg = dict(
    _delete_=True,
    type='mmnas_tricks.PerturbationSelectionLoop',
    tune_iters=20,
    lr_ratio=0.1,
    edge_order='random',
    bn_mode='train',
    score_key='coco/bbox_mAP',
    val_dataloader=_base_.digits_heldout_dataloader,
    evaluator=_base_.digits_heldout_evaluator,
    seed=0)
param_scheduler = []  # the loop sets the learning rate
default_hooks = dict(checkpoint=None)
