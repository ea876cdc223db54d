"""Configs: walking one (datasets, loaders, class names, scopes), checking
it before anything is built, applying each command-line flag to it, and
preparing a training or test run."""
