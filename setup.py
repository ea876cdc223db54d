"""Install with ``make install`` (see README): mmcv must be built from source
against an already installed torch, which ``pip install`` alone cannot do."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

here = osp.dirname(osp.abspath(__file__))


def provide_mim_files() -> None:
    """mim reads a package's model index from ``<package>/.mim/`` (mmdet
    and mmseg ship theirs so): put model-index.yml and configs/ there
    whenever setup.py runs. For an editable install (``make install``) they
    are relative links to the checkout's, so edits show at once; for a
    wheel or an sdist, plain copies. From an sdist the copy is already in
    the package."""
    editable = 'editable_wheel' in sys.argv
    mim_dir = osp.join(here, 'convmlp_mm', '.mim')
    for name in ('model-index.yml', 'configs'):
        src, dst = osp.join(here, name), osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.isdir(dst) and not osp.islink(dst):
            shutil.rmtree(dst)
        elif osp.lexists(dst):
            os.remove(dst)
        os.makedirs(mim_dir, exist_ok=True)
        if editable:
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst,
                            ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(src, dst)


provide_mim_files()
version = {}
with open(osp.join(here, 'convmlp_mm', 'version.py')) as f:
    exec(f.read(), version)
with open(osp.join(here, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='convmlp_mm',
    version=version['__version__'],
    description='ConvMLP backbone, configs and tools for mmdet 3 and '
    'mmsegmentation 1',
    long_description=long_description,
    long_description_content_type='text/markdown',
    packages=find_packages(include=['convmlp_mm', 'convmlp_mm.*']),
    # The tools' argument parsing, importable without the package (whose
    # import loads torch): --help answers at once.
    py_modules=['convmlp_mm_cli'],
    python_requires='>=3.8',
    install_requires=[
        # torch >= 2.14 needs C++20, which the mmcv 2.1.0 build does not use.
        'torch>=2.0,<2.14',
        # Ranges, not pins, so that an existing OpenMMLab environment
        # resolves. Tried: mmengine 0.10.4 and 0.10.7, mmdet 3.2.0 and 3.3.0,
        # mmsegmentation 1.2.1 and 1.2.2 (1.2.0's wheel lacks a file its
        # import reads), mmcv 2.1.0 (docs/get_started.md).
        'mmengine>=0.10.4,<0.11',
        # mmdet 3.3 and mmseg 1.2 refuse mmcv >= 2.2; built with its C++ ops
        # (import convmlp_mm checks them and points to `make install`).
        'mmcv>=2.1.0,<2.2.0',
        'mmdet>=3.2.0,<3.4',
        'mmsegmentation>=1.2.1,<1.3',
        # mmsegmentation 1.2.2 imports these without declaring them.
        'ftfy',
        'regex',
        'pycocotools',
        # mmengine 0.10 imports pkg_resources for mmdet::/mmseg:: bases,
        # which setuptools 82 no longer has (81.0.0 tried).
        'setuptools<82',
        'matplotlib',
    ],
    extras_require={
        'tests': [
            # pytest-xdist: the suite on every core (pytest.ini); filelock:
            # artifacts built once for all workers (tests/artifacts.py).
            # pytest < 9: pytest 9 keeps a node's id in ``Node._id``, and
            # pytest-xdist (3.8) still marks a test's xdist_group by
            # setting ``_nodeid``, so --dist loadgroup silently stopped
            # grouping (tests/test_install.py checks it groups).
            'pytest>=8,<9', 'pytest-timeout', 'pytest-xdist>=3.5',
            'filelock',
            'openmim', 'ruff>=0.14,<0.18'
        ],
        'mim': ['openmim'],
        # mmengine's TensorboardVisBackend (torch.utils.tensorboard); the
        # "future" package its message names is not needed (tried 2.21.0).
        'tensorboard': ['tensorboard>=2.21,<3'],
        # ONNX export (torch's dynamo exporter needs onnxscript) and ONNX
        # Runtime; tried with onnx 1.23, onnxruntime 1.32, onnxscript 0.7.
        'onnx': [
            'onnx>=1.17,<1.24', 'onnxruntime>=1.20,<1.33',
            'onnxscript>=0.5,<0.8'
        ],
    },
    include_package_data=True,
    package_data={
        'convmlp_mm': [
            '.mim/model-index.yml', '.mim/configs/*/*.py',
            '.mim/configs/*/*.yml', '.mim/configs/*/_base_/*.py'
        ]
    },
    license='Apache-2.0',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
