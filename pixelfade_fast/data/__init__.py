"""Dataset readers (Market-1501, MSMT17, CUHK03, CUHK01, CSV), image loading and the SynthPed generator
(with captions and infrared-like cameras)."""
from .captions import read_captions
from .csv_folder import read_csv_dataset
from .cuhk01 import read_cuhk01
from .cuhk03 import read_cuhk03
from .datasets import DATASETS, Dataset, limit_test_ids, read_dataset, register_dataset
from .images import load_image, load_images
from .market1501 import parse_market_name, read_market1501
from .msmt17 import read_msmt17
from .records import DatasetNotFoundError, ReIDSplit, Record
from .synthped import generate_synthped, read_modalities, render_synthped_crop, synthped_captions

__all__ = ["DATASETS", "Dataset", "DatasetNotFoundError", "ReIDSplit", "Record", "generate_synthped",
           "limit_test_ids", "load_image", "load_images", "parse_market_name", "read_captions", "read_csv_dataset",
           "read_cuhk01", "read_cuhk03", "read_dataset", "read_market1501", "read_modalities", "read_msmt17",
           "register_dataset", "render_synthped_crop", "synthped_captions"]
