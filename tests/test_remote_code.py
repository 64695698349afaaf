"""A folder saved after `register_for_auto_class` loads with trust_remote_code where `lcrec` cannot be imported."""

import json
import os
import subprocess
import sys
import textwrap

from lcrec.modeling_lcrec import LCRecForCausalLM
from lcrec.remote_code import BUNDLE_FILES, flatten_imports

HISTORIES = [[1, 2, 3], [4, 5]]

CLEAN_LOAD = textwrap.dedent(
    """
    import json, sys
    sys.modules["lcrec"] = None  # any `import lcrec` now fails
    sys.path = [p for p in sys.path if not p.rstrip("/").endswith("src")]
    from transformers import AutoModel, AutoTokenizer
    folder = sys.argv[1]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert type(tokenizer).__name__ == "LCRecTokenizer" and type(tokenizer).__module__.startswith("transformers_modules")
    print(json.dumps(model.recommend(json.loads(sys.argv[2]), top_k=4, num_beams=6)))
    """
)


def test_flatten_imports():
    source = "from .generation.trie import SemanticIdTrie\nfrom ..io_utils import write_json\n    from .tasks.templates import x\nimport os\n"
    assert flatten_imports(source) == "from .trie import SemanticIdTrie\nfrom .io_utils import write_json\n    from .templates import x\nimport os\n"


def test_remote_code_loads_without_lcrec(tmp_path, make_lcrec_model):
    model = make_lcrec_model("qwen2", False)
    expected = model.recommend(HISTORIES, top_k=4, num_beams=6)
    LCRecForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    try:
        model.save_pretrained(tmp_path / "model")
    finally:
        LCRecForCausalLM._auto_class = None
    folder = tmp_path / "model"
    assert set(BUNDLE_FILES) <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "config.json").read_text())["auto_map"]["AutoModel"] == "modeling_lcrec.LCRecForCausalLM"
    assert json.loads((folder / "tokenizer_config.json").read_text())["auto_map"]["AutoTokenizer"][1] == "tokenization_lcrec.LCRecTokenizer"
    # the in-memory objects are left as they were
    assert not hasattr(model.config, "auto_map") and getattr(model.tokenizer, "_auto_map", None) is None
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", CLEAN_LOAD, str(folder), json.dumps(HISTORIES)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert [[tuple(pair) for pair in ranked] for ranked in got] == expected
