"""CachedBatches: a scoring dataloader's batches loaded once, handed out
as fresh copies for every candidate."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.dataset import pseudo_collate


class CountingLoader:
    """A dataloader of ``n`` images in batches of ``batch``, counting its
    passes."""

    def __init__(self, n=10, batch=4, size=8):
        self.dataset = list(range(n))
        self.batch = batch
        self.size = size
        self.passes = 0

    def __len__(self):
        return -(-len(self.dataset) // self.batch)

    def __iter__(self):
        self.passes += 1
        for i in range(0, len(self.dataset), self.batch):
            items = [
                dict(
                    inputs=torch.full((3, self.size, self.size), float(j)),
                    data_samples=DetDataSample(metainfo=dict(img_id=j)))
                for j in self.dataset[i:i + self.batch]
            ]
            yield pseudo_collate(items)


def second_pass_writes(batches):
    """What a model does to the samples it scores: new metainfo from its
    preprocessor, predictions."""
    from mmengine.structures import InstanceData
    for data in batches:
        for sample in data['data_samples']:
            sample.set_metainfo(dict(scale_factor=(9, 9)))
            sample.pred_instances = InstanceData(scores=torch.ones(1))
        yield data


def ids(batches):
    return [[s.img_id for s in d['data_samples']] for d in batches]


def test_loaded_once_then_the_same_batches_again():
    from mmnas_tricks.engine.scoring import CachedBatches
    loader = CountingLoader()
    cached = CachedBatches(loader)
    first = list(cached)
    assert cached.kept and loader.passes == 1
    # a model's preprocessor writes into the samples it gets
    for data in second_pass_writes(first):
        pass
    second, third = list(cached), list(cached)
    assert loader.passes == 1
    assert ids(first) == ids(second) == ids(third) == [[0, 1, 2, 3],
                                                       [4, 5, 6, 7], [8, 9]]
    assert all('scale_factor' not in s and 'pred_instances' not in s
               for d in second for s in d['data_samples'])
    for data in second_pass_writes(second):  # and the kept ones are intact
        pass
    assert all('pred_instances' not in s for d in list(cached)
               for s in d['data_samples'])
    assert second[0]['data_samples'][0] is not third[0]['data_samples'][0]
    assert torch.equal(second[2]['inputs'][1], torch.full((3, 8, 8), 9.))
    assert len(cached) == 3 and cached.dataset is loader.dataset


def test_regrouped_into_larger_batches():
    from mmnas_tricks.engine.scoring import CachedBatches
    loader = CountingLoader()
    cached = CachedBatches(loader, batch_size=6)
    assert ids(cached) == ids(cached) == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9]]
    assert loader.passes == 1 and len(cached) == 2


def test_over_the_budget_the_loader_every_time():
    from mmnas_tricks.engine.scoring import CachedBatches
    loader = CountingLoader(size=64)  # 10 images of 48 kB
    cached = CachedBatches(loader, budget_mb=0.2)
    assert ids(cached) == ids(cached) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert not cached.kept and loader.passes == 2
    off = CachedBatches(CountingLoader(), budget_mb=0)
    list(off)
    list(off)
    assert off.loader.passes == 2
    with pytest.raises(ValueError, match='budget_mb=-1'):
        CachedBatches(loader, budget_mb=-1)
    with pytest.raises(ValueError, match='batch_size=0'):
        CachedBatches(loader, batch_size=0)


def test_an_interrupted_first_pass_keeps_nothing():
    from mmnas_tricks.engine.scoring import CachedBatches
    loader = CountingLoader()
    cached = CachedBatches(loader)
    for _ in cached:
        break
    assert not cached.kept
    assert ids(cached) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert cached.kept and loader.passes == 2


class CountingModel(torch.nn.Module):
    """A model whose data preprocessor is mmdet's, counting its calls."""

    def __init__(self, preprocessor=None):
        super().__init__()
        from mmdet.models.data_preprocessors import DetDataPreprocessor
        self.data_preprocessor = preprocessor or DetDataPreprocessor(
            mean=[1., 1., 1.], std=[2., 2., 2.])
        self.calls = 0
        self.data_preprocessor.register_forward_hook(self._count)

    def _count(self, *args):
        self.calls += 1


def test_preprocessed_batches_kept_and_handed_out_fresh():
    from mmnas_tricks.engine.scoring import CachedBatches, prepared_batches
    loader = CountingLoader()
    model = CountingModel()
    cached = CachedBatches(loader)
    first = list(second_pass_writes(prepared_batches(cached, model)))
    assert model.calls == 3 and loader.passes == 1
    second = list(prepared_batches(cached, model))
    third = list(prepared_batches(cached, model))
    assert model.calls == 3 and loader.passes == 1  # neither ran again
    assert ids(first) == ids(second) == ids(third)
    for a, b in zip(first, second):
        assert torch.equal(a['inputs'], b['inputs'])
        assert a['inputs'].dtype == torch.float32
        for x, sample in zip(b['inputs'], b['data_samples']):
            assert torch.equal(x, torch.full((3, 8, 8),
                                             (sample.img_id - 1) / 2))
    # the preprocessor's metainfo is there, what the first pass wrote
    # (metainfo, predictions) is not, and every pass has samples of its own
    assert all(s.batch_input_shape == (
        8, 8) and 'scale_factor' not in s and 'pred_instances' not in s
               for d in second + third for s in d['data_samples'])
    assert second[0]['data_samples'][0] is not third[0]['data_samples'][0]
    # a plain loader goes through the preprocessor on every pass
    plain = CountingModel()
    list(prepared_batches(loader, plain))
    list(prepared_batches(loader, plain))
    assert plain.calls == 6


def test_preprocessed_per_input_size_and_within_the_budget():
    """A searchable input size: one kept set per size; the kept raw samples'
    ground truth is not rescaled in place on the way. Over the budget the
    preprocessor runs every pass."""
    from mmengine.structures import InstanceData

    from mmnas_tricks.engine.scoring import CachedBatches, prepared_batches
    from mmnas_tricks.models.data_preprocessors import \
        SearchableDetDataPreprocessor

    class WithBoxes(CountingLoader):

        def __iter__(self):
            for data in super().__iter__():
                for s in data['data_samples']:
                    s.set_metainfo(
                        dict(
                            img_shape=(8, 8),
                            ori_shape=(8, 8),
                            scale_factor=(1., 1.)))
                    s.gt_instances = InstanceData(
                        bboxes=torch.tensor([[0., 0., 4., 4.]]),
                        labels=torch.tensor([0]))
                yield data

    pre = SearchableDetDataPreprocessor(sizes=[8, 16], base_size=8)
    model = CountingModel(pre)
    cached = CachedBatches(WithBoxes())
    for size, side in [(8, 8), (16, 16), (8, 8), (16, 16)]:
        pre.size.current_choice = size
        batches = list(prepared_batches(cached, model))
        assert {tuple(d['inputs'].shape[-2:])
                for d in batches} == {(side, side)}
        box = batches[0]['data_samples'][0].gt_instances.bboxes
        assert box.tolist() == [[0., 0., side / 2, side / 2]]
    assert model.calls == 6  # one pass per size
    assert all(s.gt_instances.bboxes.tolist() == [[0., 0., 4., 4.]]
               for d in cached for s in d['data_samples'])
    # 10 inputs of 3 x 8 x 8 floats kept (7.5 kB), 30 kB more at 16 x 16
    tight = CachedBatches(WithBoxes(), budget_mb=0.03)
    model.calls = 0
    for _ in range(2):
        pre.size.current_choice = 16
        list(prepared_batches(tight, model))
    assert tight.kept and model.calls == 6
