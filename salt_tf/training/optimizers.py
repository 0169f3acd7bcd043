"""Phase 2's optimizer: Keras' AdamW with TensorFlow's fused Adam kernel doing each variable's update.

Keras 3 writes Adam's update of one variable as about twenty element-wise ops (the step count, two
powers, the two moments, the step size, the division). A U-Net has about two hundred variables, so
the train step's graph gains some four thousand ops, which TensorFlow traces and optimises at the
start of every fit() of phase 2 (every fold, every resume) and, run eagerly, dispatches one by one
at every step. ``tf.raw_ops.ResourceApplyAdam`` is the same update as one op per variable:

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m <- m + (g - m) * (1 - beta_1);  v <- v + (g^2 - v) * (1 - beta_2)
    w <- w - lr_t * m / (sqrt(v) + epsilon)

which is Keras' ``Adam.update_step`` term for term (epsilon outside the square root in both).
Weight decay stays Keras' own (``Optimizer._apply_weight_decay``, before the update), and so do
the variables (one momentum and one velocity per weight, in Keras' order), so a checkpoint holds
the same arrays with either optimizer. Where the fused kernel does not fit (amsgrad, a backend
other than TensorFlow, a distribution strategy's replicas) the update is Keras' own.
"""
from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="salt_tf")
class FusedAdamW(keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` whose per-variable update is TensorFlow's fused Adam kernel."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype))
