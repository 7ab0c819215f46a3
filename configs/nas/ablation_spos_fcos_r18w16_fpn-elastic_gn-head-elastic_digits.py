# Trick ablation on the main job's space (tools/trick_ablation.py): the main
# pipeline shortened (6 supernet epochs, 2 search generations of 10) and run
# once per variant; each variant's supernet ranks the same 10 subnets
# (baseline + 9 random, seed 0) against 4-epoch stand-alone training, and
# its found subnet is trained stand-alone the same way.
#   baseline           sandwich single-path sampling, BN calibration (10)
#   no_bn_calibration  search without BN calibration (same supernet)
#   tunas_warmup       + TuNAS all-ops warm-up, first 25% (docs/tricks.md T1.3)
#   uniform_sampling   SPOS uniform sampling instead of the sandwich rule
# Run: python tools/trick_ablation.py \
#   configs/nas/ablation_spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py
_base_ = ['./spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py']

ablation = dict(
    supernet_epochs=6,
    search=dict(
        max_generations=2, population_size=10, num_mutation=5,
        num_crossover=5),
    rank_subnets=10,
    rank_seed=0,
    standalone_epochs=4,
    tricks=dict(
        baseline=dict(),
        no_bn_calibration=dict(search=dict(calibrate_bn=0)),
        tunas_warmup=dict(hooks=[
            dict(
                type='mmnas_tricks.AllOpsWarmupHook',
                warmup_ratio=0.25,
                seed=0)
        ]),
        uniform_sampling=dict(
            supernet=dict(custom_hooks=[
                dict(
                    type='mmnas_tricks.SampleSubnetHook',
                    seed=0,
                    strategy='uniform')
            ]))))
