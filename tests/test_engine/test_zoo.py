"""Model-zoo entries: the dataset and task an entry names, and the entry's
layout."""


def test_dataset_and_task_through_dataset_wrappers(tmp_path):
    import yaml
    from mmengine.config import Config

    from mmnas_tricks.engine.zoo import (dataset_name, task_name,
                                         write_zoo_entry)
    det = Config(
        dict(
            model=dict(type='FCOS', bbox_head=dict(type='FCOSHead')),
            train_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset',
                    times=2,
                    dataset=dict(type='mmnas_tricks.DigitsDetDataset')))))
    seg = Config(
        dict(
            model=dict(decode_head=dict(type='FPNHead')),
            train_dataloader=dict(dataset=dict(type='ADE20KDataset'))))
    assert dataset_name(det) == 'DigitsDetDataset'
    assert dataset_name(seg) == 'ADE20KDataset'
    assert dataset_name(Config(dict(model=dict()))) == 'unknown'
    assert task_name(det) == 'Object Detection'
    assert task_name(seg) == 'Semantic Segmentation'
    for name in ('found.py', 'found.pth', 'found.yaml'):
        (tmp_path / name).write_text('')
    path = write_zoo_entry(
        str(tmp_path / 'zoo' / 'model_zoo.yml'),
        'found',
        str(tmp_path / 'found.py'),
        str(tmp_path / 'found.pth'),
        str(tmp_path / 'found.yaml'),
        156_000_000,
        1_149_000, {'coco/bbox_mAP': 0.74912},
        dataset=dataset_name(det),
        task=task_name(det),
        input_size=((3, 128, 128), 'the test'))
    entry = yaml.safe_load(open(path))['Models'][0]
    assert entry['Config'] == '../found.py'
    assert entry['Metadata']['FLOPs (G)'] == 0.156
    assert entry['Metadata']['Input size'] == '128x128'
    assert entry['Results'] == [
        dict(
            Task='Object Detection',
            Dataset='DigitsDetDataset',
            Metrics={'coco/bbox_mAP': 0.7491})
    ]
