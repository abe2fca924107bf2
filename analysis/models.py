# analysis/ holds no data of its own: it reads raters/ and generation/ through queries.py.
