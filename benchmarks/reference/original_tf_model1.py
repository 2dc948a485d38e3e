"""Time the original TensorFlow package's model_1 demo on this machine, so that its training speed
and ours are measured side by side (docs/performance.md).

Re-built for timing from the original repository (github.com/AHamamd150/Multi-Scale-Transformer-encoder):
model_1 of source/transformer.py (create_Part_classifier) with the settings of its input.py, and
the @tf.function train step of source/train.py. 50 tokens x 7 features, a LayerNorm on the inputs,
3 blocks of [LayerNorm, MultiHeadAttention(5 heads, key_dim 7, dropout 0.2 on the attention
weights), residual, LayerNorm, Dense 64 + GELU + Dropout, Dense 7 + GELU + Dropout, residual], then
LayerNorm, Flatten, Dropout, Dense 128 and 64 (GELU + Dropout), Dense 2 with softmax; Adam(1e-3),
sparse categorical cross-entropy, accuracy metric, batch 50. Synthetic inputs.

Two figures: the compiled train step alone (``rounds``), and one epoch of the original training
loop as written (``--loop-steps``, 1600 steps = its demo's 80k training events): per step it also
appends the loss and accuracy to Python lists, feeds the whole lists to the epoch metrics and prints
a progress line, a cost that grows along the epoch.

Needs TensorFlow, which the project does not install, and nothing of the project; in the
repository root:

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfenv/bin/python -m benchmarks.reference.original_tf_model1 --rounds 5
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import tensorflow as tf
from tensorflow.keras import layers

TOKENS, FEATURES, HEADS, BLOCKS, BATCH, DROPOUT = 50, 7, 5, 3, 50, 0.2


def mlp(x, units, dropout):
    for n in units:
        x = layers.Dense(n, activation=tf.nn.gelu)(x)
        x = layers.Dropout(dropout)(x)
    return x


def model_1():
    inputs = layers.Input(shape=(TOKENS, FEATURES))
    x = layers.LayerNormalization()(inputs)
    for _ in range(BLOCKS):
        h = layers.LayerNormalization()(x)
        h = layers.MultiHeadAttention(num_heads=HEADS, key_dim=FEATURES, dropout=DROPOUT)(h, h)
        x = layers.Add()([h, x])
        h = mlp(layers.LayerNormalization()(x), [64, FEATURES], DROPOUT)
        x = layers.Add()([h, x])
    x = layers.Flatten()(layers.LayerNormalization(epsilon=1e-6)(x))
    x = mlp(layers.Dropout(DROPOUT)(x), [128, 64], DROPOUT)
    return tf.keras.Model(inputs, layers.Dense(2, activation="softmax")(x))


def original_loop(train_step, steps, rng):
    """One epoch of source/train.py's training_loop: shuffled batches and its per-step bookkeeping."""
    x = rng.normal(size=(steps * BATCH, TOKENS, FEATURES)).astype("float32")
    y = rng.integers(0, 2, size=steps * BATCH)
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(BATCH)
    epoch_loss, epoch_acc = tf.keras.metrics.Mean(), tf.keras.metrics.Mean()
    losses, accs = [], []
    start = time.perf_counter()
    for step, (xb, yb) in enumerate(data):
        loss, acc = train_step(xb, yb)
        losses.append(loss)
        accs.append(acc)
        epoch_loss.update_state(losses)
        epoch_acc.update_state(accs)
        print(f"\rstep {step + 1} :  loss = {float(loss):2.5f}  accuracy = {float(acc):2.5f}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return steps * BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference.original_tf_model1",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="train steps per round (default %(default)s)")
    parser.add_argument("--loop-steps", type=int, default=0,
                        help="also time one epoch of this many steps of the original loop as written (its demo: 1600)")
    parser.add_argument("--out", default=None, help="JSON file for the figures")
    args = parser.parse_args()

    model = model_1()
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
    optimizer = tf.keras.optimizers.Adam(learning_rate=1e-3)
    accuracy = tf.keras.metrics.SparseCategoricalAccuracy()

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        accuracy.update_state(y, logits)
        return loss, accuracy.result()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.steps * BATCH, TOKENS, FEATURES)).astype("float32")
    y = rng.integers(0, 2, size=args.steps * BATCH)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).cache()
    for xb, yb in data.take(5):  # trace and warm up
        train_step(xb, yb)
    rounds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for xb, yb in data:
            loss, _ = train_step(xb, yb)
        float(loss)  # wait for the last step
        rounds.append(args.steps * BATCH / (time.perf_counter() - start))
    result = {"train_step_events_per_s": {"median": statistics.median(rounds), "min": min(rounds),
                                          "max": max(rounds), "rounds": rounds},
              "parameters": int(model.count_params()), "tensorflow": tf.__version__,
              "cores": os.cpu_count(), "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
              "loadavg": os.getloadavg()}
    if args.loop_steps:
        result["loop_as_written_events_per_s"] = original_loop(train_step, args.loop_steps, rng)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
