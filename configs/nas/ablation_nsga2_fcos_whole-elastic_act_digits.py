# The main job's space with the activation of each head tower a choice too
# (ReLU, SiLU, GELU, Hardswish: docs/tricks.md, "Training recipe"), ReLU
# first, so the first subnet is still the baseline FCOS and inherits its
# weights. The found subnets export as mmdet's FCOSHead whose tower
# ConvModules carry the chosen act_cfg. A row of the recipe ablation:
#   python tools/nas.py THIS_CONFIG
_base_ = ['nsga2_fcos_whole-elastic_r18w16_digits.py']

model = dict(bbox_head=dict(act_choices=('ReLU', 'SiLU', 'GELU', 'HSwish')))
