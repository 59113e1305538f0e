"""Settings shared by the tests that run whole steps."""

# A DDPM small enough to train in a second or two: the steps' tests need a model, not a good one.
TINY_DDPM = {
    "epochs": "2",
    "batch_size": "8",
    "base_channels": "8",
    "channel_mults": "1,2",
    "num_res_blocks": "1",
    "attention_resolutions": "",
    "num_steps": "50",
    "sample_every": "0",
}
