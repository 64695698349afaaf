"""LC-Rec supervised fine-tuning with TRL's SFTTrainer.

    accelerate launch recipes/sft.py --config ml-100k-cpu [--key value ...]
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/sft.py --config beauty

`--config` takes a packaged preset name (`lcrec.presets`) or a YAML path; command-line flags override the YAML.
Every option lives in `lcrec.training` (DataOptions, ModelOptions, LoraOptions) or in TRL's SFTConfig. All logic
lives in `lcrec.training.run_sft`, which `lcrec train` runs too.
"""

import logging

from lcrec.cli import close_process_group
from lcrec.training import parse_sft_args, run_sft

if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    data_options, model_options, lora_options, training_args = parse_sft_args()
    run_sft(data_options, model_options, lora_options, training_args)
    close_process_group()
