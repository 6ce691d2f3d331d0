"""The faster formulations that the framework modules use compute the same
thing as the plain layers they replace."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT


def only(framework, name):
    if framework != name:
        pytest.skip(f'{name} only')


def test_fused_batch_norm_matches_keras(framework, d2l):
    only(framework, 'tensorflow')
    import tensorflow as tf
    X = tf.constant(np.random.RandomState(0).normal(1, 3, (8, 5, 5, 3)).astype('float32'))
    fused = d2l.FusedBatchNorm()
    keras = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    for layer in (fused, keras):
        layer(X[:1])
    weights = tf.range(3.0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(X)
        Y_fused, Y_keras = fused(X, training=True), keras(X, training=True)
        loss_fused = tf.reduce_sum(Y_fused * weights)
        loss_keras = tf.reduce_sum(Y_keras * weights)
    np.testing.assert_allclose(Y_fused, Y_keras, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss_fused, X), tape.gradient(loss_keras, X),
                               atol=1e-5)
    for g_fused, g_keras in zip(tape.gradient(loss_fused, fused.trainable_weights),
                                tape.gradient(loss_keras, keras.trainable_weights)):
        np.testing.assert_allclose(g_fused, g_keras, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean, keras.moving_mean, atol=1e-6)
    # the running variance averages the unbiased batch variance, as in PyTorch
    unbiased = 0.9 + 0.1 * np.var(X.numpy(), axis=(0, 1, 2), ddof=1)
    np.testing.assert_allclose(fused.moving_variance, unbiased, rtol=1e-5)
    moving_mean = fused.moving_mean.numpy()
    np.testing.assert_allclose(
        fused(X, training=False),
        (X - moving_mean) / np.sqrt(fused.moving_variance.numpy() + 1e-5), atol=1e-5)
    np.testing.assert_array_equal(fused.moving_mean, moving_mean)  # eval leaves it alone


@pytest.mark.parametrize('strides', [1, 2])
def test_jax_1x1_convolution_is_flax_conv(framework, d2l, strides):
    only(framework, 'jax')
    import jax
    from flax import linen as nn
    X = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 5))
    ours = d2l._conv(7, strides=strides)
    variables = ours.init(jax.random.PRNGKey(1), X)
    variables = jax.tree_util.tree_map(lambda v: v + 0.1, variables)   # a nonzero bias
    flax_conv = nn.Conv(7, (1, 1), strides=strides, padding=0)
    np.testing.assert_allclose(ours.apply(variables, X), flax_conv.apply(variables, X),
                               atol=1e-5)


def test_mxnet_uses_every_physical_core(framework):
    only(framework, 'mxnet')
    from d2lsupport.core import physical_cores
    code = ('import os; from d2lsupport import mxnet; import mxnet as mx; '
            'print(os.environ["OMP_NUM_THREADS"])')
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    run = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    assert run.stdout.split()[-1] == str(physical_cores())
    run = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         env={**env, 'OMP_NUM_THREADS': '1'},
                         capture_output=True, text=True, check=True)
    assert run.stdout.split()[-1] == '1'   # a user's setting wins
