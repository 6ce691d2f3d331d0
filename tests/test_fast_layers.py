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


def test_jax_initialization_compiled_for_speed_gives_the_usual_values(framework, d2l):
    only(framework, 'jax')
    import jax
    model, key, X = d2l.RegNetX32(), jax.random.PRNGKey(3), np.ones((2, 16, 16, 1), 'float32')
    ours = jax.tree_util.tree_leaves(d2l._initialize(model, key, X))
    usual = jax.tree_util.tree_leaves(jax.jit(model.init)(key, X))   # XLA's default level
    assert len(ours) == len(usual) == 200
    for a, b in zip(ours, usual):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('strides', [1, 2])
def test_jax_1x1_convolution_is_flax_conv(framework, d2l, strides):
    only(framework, 'jax')
    import jax
    from flax import linen as nn
    X = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 5))
    ours = d2l.Conv1x1(7, strides=strides)
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


@pytest.mark.parametrize('strides', [1, 2])
def test_tensorflow_split_group_conv_is_the_native_grouped_conv(framework, d2l, strides):
    only(framework, 'tensorflow')
    import tensorflow as tf
    X = tf.constant(np.random.RandomState(0).normal(size=(2, 7, 7, 8)).astype('float32'))
    split = d2l.SplitGroupConv2D(8, 3, strides=strides, padding='same', groups=4)
    native = tf.keras.layers.Conv2D(8, 3, strides=strides, padding='same', groups=4)
    split(X), native(X)
    assert split.kernel.shape == native.kernel.shape == (3, 3, 2, 8)
    native.set_weights([w + 0.1 for w in split.get_weights()])   # a nonzero bias
    split.set_weights(native.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(X)
        Y_split, Y_native = split(X), native(X)
        loss_split, loss_native = (tf.reduce_sum(Y * tf.range(8.0)) for Y in (Y_split, Y_native))
    np.testing.assert_allclose(Y_split, Y_native, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss_split, X), tape.gradient(loss_native, X),
                               atol=1e-4)
    np.testing.assert_allclose(tape.gradient(loss_split, split.kernel),
                               tape.gradient(loss_native, native.kernel), atol=1e-4)


@pytest.mark.parametrize('strides', [1, 2])
def test_jax_grouped_conv_is_the_feature_group_convolution(framework, d2l, strides):
    only(framework, 'jax')
    import jax
    from flax import linen as nn
    X = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 7, 8))
    ours = d2l.GroupedConv3x3(8, group_width=2, strides=strides)
    variables = ours.init(jax.random.PRNGKey(1), X)
    variables = jax.tree_util.tree_map(lambda v: v + 0.1, variables)   # a nonzero bias
    native = nn.Conv(8, (3, 3), strides=strides, padding=1, feature_group_count=4)
    assert jax.tree_util.tree_map(np.shape, variables) == \
        jax.tree_util.tree_map(np.shape, native.init(jax.random.PRNGKey(1), X))
    np.testing.assert_allclose(ours.apply(variables, X), native.apply(variables, X), atol=1e-5)

    def loss(module, variables, X):
        return (module.apply(variables, X) * np.arange(8.0)).sum()

    for argnum in (1, 2):       # gradients with respect to the weights and the input
        grad_ours = jax.grad(loss, argnum)(ours, variables, X)
        grad_native = jax.grad(loss, argnum)(native, variables, X)
        for a, b in zip(jax.tree_util.tree_leaves(grad_ours),
                        jax.tree_util.tree_leaves(grad_native)):
            np.testing.assert_allclose(a, b, atol=1e-4)
