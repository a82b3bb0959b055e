"""newsetl: news articles in, a warehouse of political events out."""
