import sys, json
from mmnas_tricks.utils import load_config
from mmnas_tricks.engine.rank import SupernetScorer
from mmnas_tricks.models.mutables import named_mutables
ckpt = sys.argv[1]
cfg = load_config('configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py')
sc = SupernetScorer(cfg, ckpt, '/tmp/mj/scorer', 'coco/bbox_mAP', num_calib=20)
first = {n: m.choices[0] for n, m in named_mutables(sc.model).items()}
print('RESULT', ckpt, 'nocalib', sc.score(first, False), 'calib20', sc.score(first, True), flush=True)
