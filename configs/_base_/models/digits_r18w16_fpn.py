# The small from-scratch backbone and 3-level FPN that the digits detection
# baselines share: ResNet-18 at base width 16 (channels 16/32/64/128), outputs
# of stages 2-4 (strides 8, 16, 32) into an FPN of 64 channels, no extra
# levels (objects are 10 to 60 px on 128 px canvases). Prefixed names, to sit
# beside a model-zoo base (see ../datasets/digits_detection.py).
digits_backbone = dict(
    _delete_=True,
    type='ResNet',
    depth=18,
    base_channels=16,
    num_stages=4,
    out_indices=(1, 2, 3),
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    style='pytorch',
    init_cfg=None)
digits_neck = dict(
    in_channels=[32, 64, 128],
    out_channels=64,
    start_level=0,
    add_extra_convs=False,
    num_outs=3)
