"""Model training from the logs: the home reward models (logistic, dnn in TensorFlow, gbt in YDF) and their
rows and DR targets, policy learning (BanditNet), and the sticker encoder (TFRS) with its logged pairs."""
