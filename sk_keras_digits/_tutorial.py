"""The tutorial's configuration, shared by the command line, tests and benchmarks.

The Keras digits tutorial trains a 64-15-10 network (sigmoid hidden layer,
softmax output) with SGD (learning rate 0.1, momentum 0.9), an L2 penalty of
1e-4, batches of 100 and 50 epochs, on the first 1000 of scikit-learn's 8x8
digits, and tests it on the other 797.
"""

#: The tutorial's network and solver, in MLPClassifier's parameter names.
TUTORIAL_PARAMS = dict(
    hidden_layer_sizes=(15,),
    activation="logistic",
    solver="sgd",
    learning_rate_init=0.1,
    momentum=0.9,
    alpha=1e-4,
    batch_size=100,
    max_iter=50,
)

#: The tutorial's split: the first N_TRAIN digits train, the rest test.
N_TRAIN = 1000

#: The models the command line and the benchmarks compare, by class name.
MODELS = ("KerasDigitClassifier", "MLPClassifier")
