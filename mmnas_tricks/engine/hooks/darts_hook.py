"""Differentiable supernet training: first-order DARTS as a hook."""
import os.path as osp
from typing import List, Optional, Sequence, Union

import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import OPTIMIZERS

from mmnas_tricks.models.mutables import get_subnet, named_mutables, set_subnet
from mmnas_tricks.registry import HOOKS
from mmnas_tricks.structures import dump_subnet
from mmnas_tricks.utils.io import dump_json_atomic
from .utils import batch_loss, check_companions, unwrap_model

#: DARTS's architecture optimizer (Liu et al., ICLR 2019; docs/tricks.md,
#: T1.1).
DEFAULT_ARCH_OPTIMIZER = dict(
    type='Adam', lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)


@HOOKS.register_module()
class DartsHook(Hook):
    """First-order DARTS (Liu et al., ICLR 2019): the searchable mutables mix
    their candidates with ``softmax(alpha)``; before every weight step the
    hook takes one architecture step on a batch of a held-out split.

    The architecture step computes the loss of the batch with the current
    weights and updates only ``alpha`` (``torch.autograd.grad``: the weights
    get no gradient from it) with its own optimizer (Adam lr 3e-4, betas
    (0.5, 0.999), weight decay 1e-3 by default). Under DDP the alpha
    gradients are averaged over ranks, so every rank keeps the same alpha.
    ``alpha`` is removed from the weight optimizer (it stays a model
    parameter, so it is in every checkpoint); the architecture optimizer's
    state goes into the checkpoint too, and ``--resume`` restores both.
    ``alpha`` requires a gradient only inside the architecture step, so DDP
    never waits for it.

    Validation and testing run the argmax subnet (one candidate per
    mutable). After every epoch and at the end the argmax subnet is written
    to ``<work_dir>/darts/argmax_epoch_{e}.yaml`` and
    ``<work_dir>/darts/argmax_subnet.yaml`` (the subnet file of
    ``tools/export_subnet.py``), and ``softmax(alpha)`` of every mutable to
    ``<work_dir>/darts/alpha_epoch_{e}.json`` and the log.

    ``arch_update_enabled`` (an attribute) switches the architecture step
    off, e.g. for a weights warm-up (docs/tricks.md, T1.1): then no batch is
    drawn and the optimizer's state is untouched.

    Args:
        arch_dataloader (dict): The held-out split the architecture is
            trained on (a dataloader config, e.g. the training pipeline on
            ``subset=(0.5, 1)`` while ``train_dataloader`` takes
            ``subset=(0, 0.5)``).
        arch_optimizer (dict): Optimizer config of ``alpha``. Defaults to
            Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables made differentiable; others keep their choice. Defaults
            to None (every searchable mutable).
        log_alpha (bool): Also print ``softmax(alpha)`` per mutable after
            every epoch. Defaults to True.

    Example:
        >>> custom_hooks = [dict(
        ...     type='mmnas_tricks.DartsHook',
        ...     arch_dataloader=dict(batch_size=16, dataset=..., sampler=...))]
    """

    priority = 'ABOVE_NORMAL'  # the architecture step precedes the weights'
    search_only = True  # dropped from exported configs

    def __init__(self,
                 arch_dataloader: dict,
                 arch_optimizer: Optional[dict] = None,
                 include: Optional[Union[str, Sequence[str]]] = None,
                 log_alpha: bool = True) -> None:
        if not isinstance(arch_dataloader, dict):
            raise ValueError('arch_dataloader must be a dataloader config '
                             f'dict, got {type(arch_dataloader).__name__}')
        arch_optimizer = dict(DEFAULT_ARCH_OPTIMIZER
                              if arch_optimizer is None else arch_optimizer)
        if 'type' not in arch_optimizer:
            raise ValueError(f'arch_optimizer={arch_optimizer} has no type')
        if 'params' in arch_optimizer:
            raise ValueError('arch_optimizer must not set params: they are '
                             'the mutables\' alpha')
        self.arch_dataloader_cfg = arch_dataloader
        self.arch_optimizer_cfg = arch_optimizer
        self.include = include
        self.log_alpha = log_alpha
        self.arch_update_enabled = True
        self.arch_optimizer = None
        self._alphas: List[torch.nn.Parameter] = []
        self._loader = None
        self._iter = None

    @staticmethod
    def _model(runner):
        return unwrap_model(runner)

    def mutables(self, model) -> dict:
        """The searchable mutables of ``model`` this hook searches."""
        return named_mutables(model, self.include, searchable_only=True)

    # -- set-up -----------------------------------------------------------
    def before_run(self, runner) -> None:
        model = self._model(runner)
        mutables = self.mutables(model)
        if not mutables:
            raise ValueError('DartsHook found no searchable mutable' +
                             (f' matching include={self.include!r}' if self.
                              include else '') +
                             '; is a searchable backbone, neck or head in the '
                             'config?')
        for m in mutables.values():
            m.set_mode('differentiable')
            m.arch_alpha.requires_grad_(False)  # only in the arch step
        self._alphas = [m.arch_alpha for m in mutables.values()]
        self._remove_from_weight_optimizer(runner)
        self.arch_optimizer = OPTIMIZERS.build(
            dict(self.arch_optimizer_cfg, params=self._alphas))

    def set_searched(self, runner, names: Sequence[str]) -> None:
        """Train alpha of the mutables ``names`` only from now on (a stage of
        a sequential search); the others keep the mode and choice they
        have."""
        self.include = list(names)
        mutables = self.mutables(self._model(runner))
        for m in mutables.values():
            m.set_mode('differentiable')
            m.arch_alpha.requires_grad_(False)
        self._alphas = [m.arch_alpha for m in mutables.values()]

    def _remove_from_weight_optimizer(self, runner) -> None:
        """Drop alpha from the weight optimizer's groups. The groups stay
        (empty) so that the parameter schedulers built on them still line
        up; this runs before ``--resume`` loads the optimizer state."""
        ids = {id(a) for a in self._alphas}
        wrappers = runner.optim_wrapper
        wrappers = wrappers.values() if hasattr(wrappers,
                                                'values') else [wrappers]
        for wrapper in wrappers:
            for group in wrapper.optimizer.param_groups:
                group['params'] = [
                    p for p in group['params'] if id(p) not in ids
                ]

    def before_train(self, runner) -> None:
        from mmengine.runner import Runner
        check_companions(
            self,
            runner,
            conflicts=('SampleSubnetHook', 'PathDropoutHook'),
            why='DARTS mixes every candidate with softmax(alpha); the other '
            'sets the candidates itself')
        self._loader = Runner.build_dataloader(
            self.arch_dataloader_cfg, seed=runner.seed)
        self._iter = None

    # -- the architecture step ----------------------------------------------
    def _next_batch(self):
        if self._iter is None:
            self._iter = iter(self._loader)
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = iter(self._loader)
            return next(self._iter)

    def arch_step(self, runner, data_batch) -> float:
        """One first-order architecture step on ``data_batch``; returns the
        loss."""
        model = self._model(runner)
        model.train()
        for a in self._alphas:
            a.requires_grad_(True)
        try:
            with torch.enable_grad():
                loss = batch_loss(model, data_batch)
                grads = torch.autograd.grad(
                    loss, self._alphas, allow_unused=True)
        finally:
            for a in self._alphas:
                a.requires_grad_(False)
        for a, g in zip(self._alphas, grads):
            g = torch.zeros_like(a) if g is None else g.detach().clone()
            all_reduce(g, op='mean')
            a.grad = g
        self.arch_optimizer.step()
        self.arch_optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        if not self.arch_update_enabled:
            return
        loss = self.arch_step(runner, self._next_batch())
        runner.message_hub.update_scalar('train/arch_loss', loss)
        runner.message_hub.update_scalar('train/arch_entropy',
                                         self.mean_entropy(runner))

    def mean_entropy(self, runner) -> float:
        """Mean entropy of ``softmax(alpha)`` over the mutables (``log n``
        when uniform)."""
        values = []
        for m in self.mutables(self._model(runner)).values():
            w = m.arch_weights().detach()
            values.append(float(-(w * w.clamp_min(1e-12).log()).sum()))
        return sum(values) / max(len(values), 1)

    # -- outputs ----------------------------------------------------------
    def _write(self, runner, tag: str) -> None:
        model = self._model(runner)
        mutables = self.mutables(model)
        alphas = {
            name: {
                str(c): round(float(w), 6)
                for c, w in zip(m.choices,
                                m.arch_weights().detach())
            }
            for name, m in mutables.items()
        }
        if self.log_alpha:
            for name, weights in alphas.items():
                print_log(
                    f'alpha {name}: ' + ', '.join(f'{c}={w:.3f}'
                                                  for c, w in weights.items()),
                    logger='current')
        if not is_main_process():
            return
        out = osp.join(runner.work_dir, 'darts')
        subnet = self.argmax(model)
        meta = dict(source='DartsHook', epoch=runner.epoch, iter=runner.iter)
        dump_json_atomic(alphas, osp.join(out, f'alpha_{tag}.json'))
        dump_subnet(subnet, osp.join(out, f'argmax_{tag}.yaml'), meta=meta)
        dump_subnet(subnet, osp.join(out, 'argmax_subnet.yaml'), meta=meta)

    def argmax(self, model) -> dict:
        """The whole subnet: argmax alpha for the differentiable mutables,
        the current choice for the others."""
        subnet = get_subnet(model)
        subnet.update(
            {n: m.argmax_choice()
             for n, m in self.mutables(model).items()})
        return subnet

    def after_train_epoch(self, runner) -> None:
        # runner.epoch counts finished epochs only after this hook; name
        # the files like the checkpoints (epoch_1 after the first)
        self._write(runner, f'epoch_{runner.epoch + 1}')

    def after_train(self, runner) -> None:
        self._write(runner, 'final')

    # -- validation runs the argmax subnet ---------------------------------
    def _enter_eval(self, runner) -> None:
        model = self._model(runner)
        subnet = self.argmax(model)
        for m in self.mutables(model).values():
            m.set_mode('sampled')
        set_subnet(model, subnet)

    def _leave_eval(self, runner) -> None:
        for m in self.mutables(self._model(runner)).values():
            m.set_mode('differentiable')
            m.arch_alpha.requires_grad_(False)

    def before_val_epoch(self, runner) -> None:
        self._enter_eval(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._leave_eval(runner)

    def before_test_epoch(self, runner) -> None:
        if self._alphas:  # inside training; a bare test keeps its subnet
            self._enter_eval(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        if self._alphas:
            self._leave_eval(runner)

    # -- checkpoints ------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.arch_optimizer is not None:
            checkpoint['darts'] = dict(
                arch_optimizer=self.arch_optimizer.state_dict(),
                arch_update_enabled=self.arch_update_enabled)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('darts')
        if state is not None and self.arch_optimizer is not None:
            self.arch_optimizer.load_state_dict(state['arch_optimizer'])
