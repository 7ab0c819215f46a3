# One-shot supernet training (single path, SPOS): a uniformly sampled subnet
# per iteration, the same on every rank; validation runs the first choice of
# every mutable (the plain architecture in the heads and FPN necks).
# DDP must tolerate the parameters of the candidates not sampled.
custom_hooks = [dict(type='mmnas_tricks.SampleSubnetHook', seed=0)]
find_unused_parameters = True
