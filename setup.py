import os.path as osp
from setuptools import find_packages, setup


def read_version():
    ns = {}
    with open(osp.join(osp.dirname(__file__), 'mmnas_tricks',
                       'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


def read_requirements(name):
    """Plain requirement lines of requirements/<name>.txt, minus comments."""
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        lines = [line.split('#')[0].strip() for line in f]
    return [line for line in lines if line and not line.startswith('-')]


setup(
    name='mmnas_tricks',
    version=read_version(),
    description='Neural architecture search for mmdet / mmseg with the bag of '
    'tricks as mmengine hooks',
    long_description=open('README.md').read()
    if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.9',
    # torch and mmcv are installed by tools/install.sh (mmcv is built from
    # source against the installed torch); they are not pip dependencies here
    # so that `pip install -e .` never replaces a CUDA torch.
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    zip_safe=False,
)
