import numpy as np
import pytest
import tensorflow as tf

from salt_tf.model.losses import (
    BCELovasz,
    BCEWithLogits,
    LovaszHinge,
    WithAuxiliary,
    bce_per_image,
    lovasz_hinge_per_image,
    phase_loss,
)
from salt_tf.run.config import Config


def lovasz_reference(logits, labels, elu=False):
    """Plain NumPy transcription of Berman et al.'s lovasz_hinge_flat, one image at a time."""
    losses = []
    for x, y in zip(logits.reshape(len(logits), -1), labels.reshape(len(labels), -1)):
        signs = 2.0 * y - 1.0
        errors = 1.0 - x * signs
        order = np.argsort(-errors, kind="stable")
        errors_sorted, gt_sorted = errors[order], y[order]
        gts = gt_sorted.sum()
        intersection = gts - np.cumsum(gt_sorted)
        union = gts + np.cumsum(1 - gt_sorted)
        jaccard = 1.0 - intersection / union
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
        hinge = (np.where(errors_sorted > 0, errors_sorted, np.expm1(errors_sorted)) + 1) if elu else np.maximum(errors_sorted, 0)
        losses.append(np.dot(hinge, jaccard))
    return np.array(losses)


def random_case(seed, batch=6, size=16):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (batch, size, size, 1)).astype(np.float32)
    labels = (rng.random((batch, size, size, 1)) < rng.random((batch, 1, 1, 1))).astype(np.float32)
    labels[0] = 0  # all empty
    labels[1] = 1  # all full
    return logits, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("elu", [False, True])
def test_lovasz_matches_numpy_reference(seed, elu):
    logits, labels = random_case(seed)
    ours = np.asarray(lovasz_hinge_per_image(labels, logits, elu=elu))
    np.testing.assert_allclose(ours, lovasz_reference(logits, labels, elu=elu), atol=1e-5, rtol=1e-5)


def test_lovasz_on_empty_image_is_the_largest_positive_error():
    logits = np.array([[[[-3.0], [0.5]], [[-1.0], [-2.0]]]], np.float32)
    labels = np.zeros_like(logits)
    # Every pixel is negative: errors are 1 + logit, and the loss is the largest one.
    assert float(lovasz_hinge_per_image(labels, logits)[0]) == pytest.approx(1.5)


def test_gradients_finite_and_loss_decreases_toward_labels():
    logits, labels = random_case(3)
    for loss in (LovaszHinge(), LovaszHinge(elu=True), LovaszHinge(symmetric=True), BCEWithLogits(), BCELovasz(),
                 BCELovasz(symmetric=True)):
        x = tf.Variable(logits)
        with tf.GradientTape() as tape:
            value = loss(labels, x)
        grad = tape.gradient(value, x).numpy()
        assert np.isfinite(grad).all() and np.abs(grad).sum() > 0, loss.name
        moved = logits + 0.5 * (2 * labels - 1)
        assert float(loss(labels, moved)) < float(value), loss.name


def test_bce_matches_keras():
    logits, labels = random_case(4)
    expected = tf.keras.losses.binary_crossentropy(labels.reshape(6, -1), logits.reshape(6, -1), from_logits=True)
    np.testing.assert_allclose(float(BCEWithLogits()(labels, logits)), float(np.mean(expected)), rtol=1e-5)


def test_combined_is_weighted_sum_and_serialises():
    logits, labels = random_case(5)
    combined = BCELovasz(bce_weight=0.3, lovasz_weight=2.0)
    expected = 0.3 * float(BCEWithLogits()(labels, logits)) + 2.0 * float(LovaszHinge()(labels, logits))
    assert float(combined(labels, logits)) == pytest.approx(expected, rel=1e-5)
    import keras

    restored = keras.losses.deserialize(keras.losses.serialize(combined))
    assert isinstance(restored, BCELovasz) and restored.bce_weight == 0.3
    assert float(restored(labels, logits)) == pytest.approx(float(combined(labels, logits)))


@pytest.mark.parametrize("seed", [0, 1])
def test_symmetric_lovasz_scores_salt_and_background_alike(seed):
    logits, labels = random_case(seed)
    both = 0.5 * (lovasz_reference(logits, labels) + lovasz_reference(-logits, 1.0 - labels))
    symmetric = LovaszHinge(symmetric=True)
    np.testing.assert_allclose(float(symmetric(labels, logits)), both.mean(), rtol=1e-5)
    # Swapping salt and background (and the logits' sign) leaves it unchanged; the plain hinge changes.
    assert float(symmetric(1.0 - labels, -logits)) == pytest.approx(float(symmetric(labels, logits)), rel=1e-5)
    assert float(LovaszHinge()(1.0 - labels, -logits)) != pytest.approx(float(LovaszHinge()(labels, logits)), rel=1e-3)


def test_phase_losses_follow_the_settings_and_survive_serialisation():
    import keras

    logits, labels = random_case(6)
    default = Config()
    assert isinstance(phase_loss(default, 1), BCEWithLogits) and isinstance(phase_loss(default, 2), LovaszHinge)
    config = Config(phase1_lovasz_weight=0.5, phase2_bce_weight=0.1, lovasz_symmetric=True)
    first, second = phase_loss(config, 1), phase_loss(config, 2)
    symmetric = float(LovaszHinge(symmetric=True)(labels, logits))
    bce = float(BCEWithLogits()(labels, logits))
    assert float(first(labels, logits)) == pytest.approx(bce + 0.5 * symmetric, rel=1e-5)
    assert float(second(labels, logits)) == pytest.approx(0.1 * bce + symmetric, rel=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(second))
    assert restored.symmetric and float(restored(labels, logits)) == pytest.approx(float(second(labels, logits)))


def test_auxiliary_heads_add_their_weighted_terms():
    """Channel 0 the logits, 1 the image head (one value per tile), 2.. the stages: the main loss, +
    0.05 x BCE of "has salt" on the head, + 0.1 x the main loss on each stage, averaged, tiles with
    salt only."""
    import keras

    logits, labels = random_case(4)
    rng = np.random.default_rng(9)
    head = np.broadcast_to(rng.normal(size=(6, 1, 1, 1)), logits.shape).astype(np.float32)
    stages = [rng.normal(0, 2, logits.shape).astype(np.float32) for _ in range(2)]
    packed = np.concatenate([logits, head, *stages], axis=-1)
    loss = WithAuxiliary(LovaszHinge(), supervision_weight=0.1, empty_weight=0.05, reduction=None)
    has_salt = (labels.reshape(6, -1).max(axis=1) > 0.5).astype(np.float32)
    assert has_salt[0] == 0 and has_salt[1] == 1
    expected = (lovasz_reference(logits, labels)
                + 0.05 * np.asarray(bce_per_image(has_salt[:, None], head[:, 0, 0, :]))
                + 0.1 * has_salt * np.mean([lovasz_reference(m, labels) for m in stages], axis=0))
    np.testing.assert_allclose(np.asarray(loss(labels, packed)), expected, rtol=1e-5, atol=1e-6)
    # Either head alone: the image head's channel is there only with its weight.
    only_stages = WithAuxiliary(LovaszHinge(), supervision_weight=0.1, reduction=None)
    np.testing.assert_allclose(np.asarray(only_stages(labels, np.concatenate([logits, *stages], -1))),
                               lovasz_reference(logits, labels) + 0.1 * has_salt * np.mean(
                                   [lovasz_reference(m, labels) for m in stages], axis=0), rtol=1e-5, atol=1e-6)
    # From the config, serialisable, and the metric reads channel 0 only.
    config = Config(supervision_weight=0.1, empty_weight=0.05)
    second = phase_loss(config, 2)
    restored = keras.losses.deserialize(keras.losses.serialize(second))
    assert isinstance(restored.main, LovaszHinge)
    assert float(restored(labels, packed)) == pytest.approx(float(np.mean(expected)), rel=1e-5)
    assert isinstance(phase_loss(config, 1).main, BCEWithLogits)
    from salt_tf.model.keras_metrics import CompetitionScore

    scores = [CompetitionScore(), CompetitionScore()]
    scores[0].update_state(labels, packed)
    scores[1].update_state(labels, logits)
    assert float(scores[0].result()) == float(scores[1].result())


# --- unlabelled pixels (sparse labels): out of every loss, exactly ---------------------------------

def sparse_case(seed, batch=5, size=16):
    """Logits, 0/1 labels, and the same labels with about a third of the pixels UNLABELLED (one
    image wholly unlabelled, one wholly labelled)."""
    from salt_tf.tiles.metrics import UNLABELLED

    logits, labels = random_case(seed, batch, size)
    rng = np.random.default_rng(seed + 100)
    unlabelled = rng.random(labels.shape) < 0.35
    unlabelled[0], unlabelled[1] = True, False
    return logits, labels, np.where(unlabelled, UNLABELLED, labels).astype(np.float32), unlabelled


LOSSES = {"bce": BCEWithLogits(), "lovasz": LovaszHinge(), "lovasz elu": LovaszHinge(elu=True),
          "symmetric lovasz": LovaszHinge(symmetric=True), "bce + lovasz": BCELovasz(0.5, 1.0, symmetric=True),
          "with auxiliary": WithAuxiliary(BCELovasz(1.0, 0.3), empty_weight=0.1)}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("seed", [0, 1])
def test_unlabelled_pixels_get_zero_gradient_and_a_wholly_unlabelled_image_costs_nothing(name, seed):
    logits, _, sparse, unlabelled = sparse_case(seed)
    loss = LOSSES[name]
    if name == "with auxiliary":  # the image head's channel after the logits
        logits = np.concatenate([logits, np.random.default_rng(seed).normal(size=logits.shape)], axis=-1).astype(np.float32)
    x = tf.Variable(logits)
    with tf.GradientTape() as tape:
        per_image = loss.call(tf.constant(sparse), x)
    grad = tape.gradient(per_image, x).numpy()
    assert np.isfinite(per_image.numpy()).all() and np.isfinite(grad).all()
    assert (grad[..., 0][unlabelled[..., 0]] == 0).all()  # exactly zero, not small
    assert np.abs(grad[..., 0][~unlabelled[..., 0]]).sum() > 0
    assert per_image.numpy()[0] == 0.0  # image 0 has no labelled pixel


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sparse_label_scores_as_the_image_of_its_labelled_pixels_alone(seed):
    logits, labels, sparse, unlabelled = sparse_case(seed)
    for k in range(1, len(logits)):
        keep = ~unlabelled[k, ..., 0]
        alone_logits, alone_labels = logits[k, ..., 0][keep][None, :, None, None], labels[k, ..., 0][keep][None, :, None, None]
        for fn in (lovasz_hinge_per_image, bce_per_image):
            got = fn(tf.constant(sparse[k : k + 1]), tf.constant(logits[k : k + 1])).numpy()
            want = fn(tf.constant(alone_labels), tf.constant(alone_logits)).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(lovasz_hinge_per_image(tf.constant(sparse[k:k + 1]), tf.constant(logits[k:k + 1])).numpy(),
                                   lovasz_reference(alone_logits, alone_labels), rtol=1e-5, atol=1e-6)
    # fully labelled: the same as before the masking
    np.testing.assert_allclose(lovasz_hinge_per_image(tf.constant(labels), tf.constant(logits)).numpy(),
                               lovasz_reference(logits, labels), rtol=1e-5, atol=1e-6)
