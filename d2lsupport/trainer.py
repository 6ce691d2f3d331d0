"""The framework-free training loop: epochs, batches, progress, plots, results.

Each framework module subclasses `BaseTrainer` and supplies three methods:
`prepare(model, data)` (initialize, build the optimizer, compile steps),
`train_step(batch)` returning the batch loss as a scalar, and
`eval_step(batch)` returning (summed loss, number correct) for the batch.
"""
import json
import os
import time

from tqdm.auto import tqdm

from .core import Budget, HyperParameters, ProgressBoard, in_notebook, machine_info

RUN_LOG_ENV = 'D2L_RUN_LOG'


class BaseTrainer(HyperParameters):
    """Fit a model to a data module; subclasses provide the framework steps."""
    framework = None
    plots_per_epoch = 2

    def __init__(self, max_epochs, num_gpus=0):
        self.save_hyperparameters()
        if num_gpus:
            print(f'Trainer: asked for {num_gpus} GPU(s) but none is available; '
                  'training on the CPU.')
        self.budget = Budget()
        self.board = ProgressBoard(xlabel='epoch')

    def prepare(self, model, data):
        raise NotImplementedError

    def train_step(self, batch):
        raise NotImplementedError

    def eval_step(self, batch):
        raise NotImplementedError

    def device_name(self):
        return 'CPU'

    def fit(self, model, data):
        """Train `model` on `data` for `max_epochs` epochs and report."""
        if self.budget.small:
            print(self.budget.banner())
        self.model, self.data = model, data
        self.epochs = self.budget.epochs(self.max_epochs)
        self.prepare(model, data)
        self.history, self.num_examples_seen = [], 0
        start = time.perf_counter()
        for self.epoch in range(self.epochs):
            train_loss = self._train_epoch()
            val_loss, val_acc = self._validate()
            self.history.append({'epoch': self.epoch + 1, 'train_loss': train_loss,
                                 'val_loss': val_loss, 'val_acc': val_acc})
        self.wall_time = time.perf_counter() - start
        self.train_loss, self.val_loss, self.val_acc = train_loss, val_loss, val_acc
        self.examples_per_sec = self.num_examples_seen / self.wall_time
        print(self.summary())
        self._log_run()

    def summary(self):
        """One line with the final numbers of the last `fit`."""
        return (f'train loss {self.train_loss:.3f}, val loss {self.val_loss:.3f}, '
                f'val acc {self.val_acc:.3f}; {self.epochs} epochs in '
                f'{self.wall_time:.1f} s ({self.examples_per_sec:.0f} examples/s, '
                f'{self.device_name()})')

    def _train_epoch(self):
        num_batches = self.budget.batches(self.data.num_batches(train=True), True)
        plot_every = max(1, num_batches // self.plots_per_epoch)
        bar = tqdm(total=num_batches, desc=f'epoch {self.epoch + 1}/{self.epochs}',
                   unit='batch', disable=in_notebook(), leave=False)
        pending, epoch_losses = [], []
        batches = self.data.train_dataloader()
        for i in range(num_batches):
            batch = next(batches)
            pending.append(self.train_step(batch))
            self.num_examples_seen += len(batch[-1])
            bar.update()
            if (i + 1) % plot_every == 0 or i + 1 == num_batches:
                mean = sum(float(loss) for loss in pending) / len(pending)
                epoch_losses.extend([mean] * len(pending))
                pending = []
                self.board.draw(self.epoch + (i + 1) / num_batches, mean, 'train_loss')
                bar.set_postfix(loss=f'{mean:.3f}')
                self._redraw()
        bar.close()
        return sum(epoch_losses) / len(epoch_losses)

    def _validate(self):
        num_batches = self.budget.batches(self.data.num_batches(train=False), False)
        loss_sum, correct, count = 0.0, 0.0, 0
        batches = self.data.val_dataloader()
        for _ in range(num_batches):
            batch = next(batches)
            batch_loss, batch_correct = self.eval_step(batch)
            loss_sum += float(batch_loss)
            correct += float(batch_correct)
            count += len(batch[-1])
        self.num_examples_seen += count
        val_loss, val_acc = loss_sum / count, correct / count
        self.board.draw(self.epoch + 1, val_loss, 'val_loss')
        self.board.draw(self.epoch + 1, val_acc, 'val_acc')
        self._redraw()
        if not in_notebook():
            print(f'epoch {self.epoch + 1}/{self.epochs}: val loss {val_loss:.3f}, '
                  f'val acc {val_acc:.3f}', flush=True)
        return val_loss, val_acc

    def _redraw(self):
        self.board.title = f'{self.framework}: epoch {self.epoch + 1}/{self.epochs}'
        self.board.show()

    def _log_run(self):
        """Append this run's results to the file named by D2L_RUN_LOG, if set."""
        path = os.environ.get(RUN_LOG_ENV)
        if not path:
            return
        record = {'model': type(self.model).__name__, 'framework': self.framework,
                  'small_budget': self.budget.small, 'epochs': self.epochs,
                  'batch_size': self.data.batch_size, 'resize': list(self.data.resize),
                  'train_loss': self.train_loss, 'val_loss': self.val_loss,
                  'val_acc': self.val_acc, 'wall_time_s': self.wall_time,
                  'examples_per_sec': self.examples_per_sec, 'history': self.history,
                  'machine': machine_info(),
                  'date': time.strftime('%Y-%m-%d %H:%M:%S')}
        with open(path, 'a') as f:
            f.write(json.dumps(record) + '\n')
