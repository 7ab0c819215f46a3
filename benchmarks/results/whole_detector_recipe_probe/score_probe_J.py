import sys
from scipy.stats import kendalltau
from mmnas_tricks.utils import load_config
from mmnas_tricks.engine.rank import SupernetScorer
from mmnas_tricks.models.mutables import named_mutables
ckpt = sys.argv[1]
cfg = load_config('configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py'); cfg.merge_from_dict(dict(model=dict(neck=dict(output_ops=[(3, 1), (5, 1)]), bbox_head=dict(tower_depths=None, tower_ops=[(3, 1), (5, 1)]))))
sc = SupernetScorer(cfg, ckpt, '/tmp/mj/scorer', 'coco/bbox_mAP', num_calib=20)
first = {n: m.choices[0] for n, m in named_mutables(sc.model).items()}
def w(r): return {f'backbone.widths.{i}': int(16 * 2**i * r) for i in range(4)}
def towers(d): return {'bbox_head.cls_convs': d, 'bbox_head.reg_convs': d}
def feat(c): return {'neck.width': c, 'bbox_head.width': c}
size = lambda s: {'data_preprocessor.size': s}
probe = {
 'baseline': ({}, 0.766),


 'feat48_w24': ({**feat(48), **w(1.5)}, 0.774),
 'feat48_160px_w12': ({**feat(48), **w(0.75), **size(160)}, 0.801),

}
est, alone = [], []
for name, (ch, a) in probe.items():
    s = sc.score(dict(first, **ch), True)
    est.append(s); alone.append(a)
    print('PROBE', name, round(s, 4), a, flush=True)
print('TAU', ckpt, kendalltau(est, alone))
