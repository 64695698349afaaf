"""Every saved folder carries its code: it loads with trust_remote_code where `lcrec` cannot be imported."""

import ast
import json
import os
import subprocess
import sys
import textwrap

from transformers.dynamic_module_utils import get_imports

import lcrec  # noqa: F401
from lcrec.remote_code import bundle_sources

HISTORIES = [[1, 2, 3], [4, 5]]

CLEAN_LOAD = textwrap.dedent(
    """
    import json, sys
    sys.modules["lcrec"] = None  # any `import lcrec` now fails
    sys.path = [p for p in sys.path if not p.rstrip("/").endswith("src")]
    from transformers import AutoModel, AutoTokenizer, pipeline
    folder, again = sys.argv[1], sys.argv[3]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert type(tokenizer).__name__ == "LCRecTokenizer"
    assert type(tokenizer).__module__.startswith("transformers_modules")
    histories = json.loads(sys.argv[2])
    ranked = model.recommend(histories, top_k=4, num_beams=6)
    pipe = pipeline("item-recommendation", model=folder, trust_remote_code=True)
    piped = [[entry["item_id"] for entry in row] for row in pipe(histories, top_k=4, num_beams=6)]
    model.save_pretrained(again)  # a remote-code model saves a folder that is just as complete
    reloaded = AutoModel.from_pretrained(again, trust_remote_code=True).eval()
    print(json.dumps({"ranked": ranked, "piped": piped, "again": reloaded.recommend(histories, top_k=4, num_beams=6)}))
    """
)


def test_every_save_writes_a_closed_flat_bundle(tmp_path, lcrec_model):
    lcrec_model.save_pretrained(tmp_path)  # no register_for_auto_class needed
    bundle = bundle_sources()
    names = {path.name for path in tmp_path.glob("*.py")}
    assert names == set(bundle)
    assert {
        "configuration_lcrec.py",
        "modeling_lcrec.py",
        "tokenization_lcrec.py",
        "recommendation.py",
        "prompts.py",
        "trie.py",
    } <= names
    assert not {"templates.py", "mix.py", "runner.py"} & names  # the model no longer pulls in task or evaluation code
    for name in names:
        source = (tmp_path / name).read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and f"{node.module}.py" in names, (name, node.module)
        # what transformers requires to be installed: never lcrec itself
        assert "lcrec" not in get_imports(tmp_path / name), name
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_lcrec.LCRecConfig",
        "AutoModel": "modeling_lcrec.LCRecForCausalLM",
        "AutoModelForCausalLM": "modeling_lcrec.LCRecForCausalLM",
    }
    assert config["custom_pipelines"]["item-recommendation"] == {
        "impl": "recommendation.ItemRecommendationPipeline",
        "pt": ["AutoModelForCausalLM"],
    }
    assert (
        json.loads((tmp_path / "tokenizer_config.json").read_text())["auto_map"]["AutoTokenizer"][1]
        == "tokenization_lcrec.LCRecTokenizer"
    )
    assert "from .io_utils import" in (tmp_path / "item_index.py").read_text()  # was `from ..io_utils import`


def test_remote_code_loads_recommends_and_pipes_without_lcrec(tmp_path, make_lcrec_model):
    model = make_lcrec_model("qwen2", False)
    expected = model.recommend(HISTORIES, top_k=4, num_beams=6)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    command = [sys.executable, "-c", CLEAN_LOAD, str(folder), json.dumps(HISTORIES), str(tmp_path / "again")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert [[tuple(pair) for pair in ranked] for ranked in got["ranked"]] == expected
    assert got["piped"] == [[item for item, _ in ranked] for ranked in expected]
    assert [[tuple(pair) for pair in ranked] for ranked in got["again"]] == expected
