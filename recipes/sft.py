"""LC-Rec supervised fine-tuning with TRL's SFTTrainer.

    accelerate launch recipes/sft.py --config recipes/configs/ml-100k-cpu.yaml [--key value ...]

Every option lives in `lcrec.training` (DataOptions, ModelOptions, LoraOptions) or in TRL's SFTConfig;
command-line flags override the YAML. All logic lives in `lcrec.training.run_sft`.
"""

import logging

from lcrec.training import parse_sft_args, run_sft

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    data_options, model_options, lora_options, training_args = parse_sft_args()
    run_sft(data_options, model_options, lora_options, training_args)
