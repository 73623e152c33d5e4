"""File names of the model repository layout, <repository>/<name>/<version>/<file>: written by
`xnornet pull` (training), read by the service and by `xnornet info`."""

MODEL_FILE = "model.xnor"
# Optional, beside the model: what it is (task, source, licence, published accuracy, sha256s).
CARD_FILE = "model_card.json"
